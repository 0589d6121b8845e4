"""`python -m verify`, and the `verify` command."""

import sys


def run() -> int:
    try:
        from verify.cli import main
    except KeyboardInterrupt:  # Ctrl-C while the modules load: one line, not a traceback
        print("verify: interrupted", file=sys.stderr)
        return 130  # verify.cli.EXIT_INTERRUPTED, not loaded yet
    return main()


if __name__ == "__main__":
    sys.exit(run())
