"""The masking module, in process: what is masked, in text, nested data and split streams."""

from __future__ import annotations

import pytest

from mlbuild.masking import MASK, Secrets, without_password

PEM = "-----BEGIN KEY-----\nAAAAbbbbCCCCdddd1111\nEEEEffffGGGGhhhh2222\n}\n-----END KEY-----"


def stream(secrets: Secrets, data: bytes, sizes: list[int]) -> bytes:
    """``data`` fed to a stream masker in chunks of the given sizes (cycled)."""
    masker = secrets.stream()
    out, at, i = b"", 0, 0
    while at < len(data):
        size = sizes[i % len(sizes)]
        out += masker.feed(data[at : at + size])
        at, i = at + size, i + 1
    return out + masker.flush()


def test_a_secret_is_masked_wherever_it_occurs() -> None:
    secrets = Secrets(["hunter2"])
    assert secrets.text("pw=hunter2, again hunter2.") == "pw=***, again ***."


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own_and_the_whole_at_once() -> None:
    secrets = Secrets([PEM])
    assert secrets.text(f"key: {PEM} end") == "key: *** end"
    assert secrets.text("line AAAAbbbbCCCCdddd1111 shown alone") == "line *** shown alone"
    # JSON-escaped on one line: each line is still found
    escaped = PEM.replace("\n", "\\n")
    assert "AAAAbbbb" not in secrets.text(escaped)
    assert "EEEEffff" not in secrets.text(escaped)


def test_short_lines_of_a_multi_line_secret_are_not_masked_alone() -> None:
    # "}" would otherwise mask every brace everywhere
    assert Secrets([PEM]).text('{"a": 1}') == '{"a": 1}'


def test_overlapping_secrets_leave_no_piece_visible() -> None:
    assert Secrets(["ABCD", "CDEF"]).text("xABCDEFy") == f"x{MASK}y"


def test_empty_and_blank_values_mask_nothing() -> None:
    secrets = Secrets(["", "   ", "\n"])
    assert not secrets
    assert secrets.text("a b\nc") == "a b\nc"


def test_nested_data_keys_values_and_numbers() -> None:
    secrets = Secrets(["s3cr3t", "424242"])
    data = {"token": "s3cr3t", "s3cr3t-key": 1, "nested": {"pin": 424242, "ok": 0.5}, "l": [True]}
    assert secrets.data(data) == {
        "token": MASK,
        f"{MASK}-key": 1,
        "nested": {"pin": MASK, "ok": 0.5},
        "l": [True],
    }


def test_from_env_skips_unset_variables() -> None:
    secrets = Secrets.from_env(["SET", "UNSET", "EMPTY"], {"SET": "value-1", "EMPTY": ""})
    assert secrets.values == frozenset({"value-1"})


@pytest.mark.parametrize("sizes", [[1], [2], [3], [5, 1], [7], [64]])
def test_a_stream_split_anywhere_is_masked_as_if_whole(sizes: list[int]) -> None:
    secrets = Secrets([PEM, "tok-123"])
    text = f"start {PEM} middle tok-12 tok-123tok-123 AAAAbbbbCCCCdddd1111 end".encode()
    assert stream(secrets, text, sizes) == secrets.text(text.decode()).encode()


def test_a_stream_holds_back_only_what_may_start_a_secret() -> None:
    masker = Secrets(["password-1"]).stream()
    assert masker.feed(b"abc pass") == b"abc "
    assert masker.feed(b"word-1 and") == b"*** and"
    assert masker.feed(b" password-") == b" "
    assert masker.feed(b"2!") == b"password-2!"
    assert masker.feed(b" passw") == b" "
    assert masker.flush() == b"passw"


def test_a_stream_of_repeats_does_not_grow_without_bound() -> None:
    masker = Secrets(["aa"]).stream()
    out = b"".join(masker.feed(b"a" * 1000) for _ in range(100))
    assert out + masker.flush() == b"***"
    assert len(masker._held) == 0


def test_undecodable_bytes_of_a_secret_are_masked_in_a_stream() -> None:
    secret = b"key-\xff\xfe-raw".decode("utf-8", "surrogateescape")  # as os.environ holds it
    assert stream(Secrets([secret]), b"x key-\xff\xfe-raw y", [3]) == b"x *** y"


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("postgresql://ci:s3cret@db:5433/runs", "postgresql://ci@db:5433/runs"),
        ("postgresql://:s3cret@db/runs", "postgresql://db/runs"),
        ("postgresql://ci:p@ss:w@rd@db/runs", "postgresql://ci@db/runs"),  # '@' in the password
        ("postgresql://ci:s3cret@[::1]:5432/runs", "postgresql://ci@[::1]:5432/runs"),
        ("postgresql://ci:@db/runs", "postgresql://ci@db/runs"),
        (
            "postgresql://db/runs?password=s3cret&sslmode=require",
            "postgresql://db/runs?sslmode=require",
        ),
        ("postgresql://db/runs?PASSWORD=s3cret", "postgresql://db/runs"),
        ("postgresql://db/runs?password=s3cret#frag", "postgresql://db/runs#frag"),
        ("postgresql://ci@db/runs", "postgresql://ci@db/runs"),
        ("sqlite:////home/a@b/password/runs.db", "sqlite:////home/a@b/password/runs.db"),
        ("sqlite:///rel/runs.db", "sqlite:///rel/runs.db"),
        ("", ""),
    ],
)
def test_a_url_is_kept_without_its_password_and_otherwise_as_written(url: str, kept: str) -> None:
    assert without_password(url) == kept
    assert "s3cret" not in without_password(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ci:s3cret@db:5433/runs", "postgresql://ci:***@db:5433/runs"),
        ("postgresql://:s3cret@[::1]/runs", "postgresql://:***@[::1]/runs"),
        (
            "postgresql://db/runs?password=s3cret&sslmode=require",
            "postgresql://db/runs?sslmode=require&password=***",
        ),
        ("postgresql://ci@db/runs", "postgresql://ci@db/runs"),
    ],
)
def test_a_url_in_a_message_shows_its_password_masked(url: str, shown: str) -> None:
    assert without_password(url, mask=MASK) == shown
