"""``python -m sb3_poplin.zoo <script> [flags]``: the ``sb3-poplin-zoo`` command (see :mod:`sb3_poplin.zoo.cli`)."""

from sb3_poplin.zoo.cli import main

if __name__ == "__main__":
    main()
