"""mlbuild vs DVC, split by case: ``common`` (measuring), ``repos`` (the generated
repositories), ``harness`` (one repetition, calling each case), one ``case_*`` module per
measured case, ``report`` (the tables); ``bench/bench_vs_dvc.py`` is the command line."""
