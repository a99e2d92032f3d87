"""Get the data sets that are not embedded:

    python -m course_lib.data download cifar10 [--dir DIR] [--url MIRROR] [--quiet]

Downloads the official CIFAR-10 archive (163 MB) with a progress bar, resumes an interrupted
transfer, checks its MD5 and extracts it into DIR (default: $COURSE_LIB_DATA, else
~/.cache/course_lib/cifar10), where load_dataset('cifar10') finds it. Exit status 0 when the
data are ready, 1 with a message (no traceback) when they could not be got.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.data import cifar10


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_lib.data",
                                     description="Get the course's data sets that are not "
                                                 "embedded (digits and mnist need nothing).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    download = commands.add_parser("download", help="download, verify and extract a data set")
    download.add_argument("name", choices=["cifar10"], help="the data set")
    download.add_argument("--dir", type=Path, default=None,
                          help=f"where to put it (default: ${cifar10.DATA_DIR_VARIABLE} if set, "
                               f"else ~/.cache/course_lib/cifar10; here "
                               f"{cifar10.default_cifar10_dir()})")
    download.add_argument("--url", default=cifar10.CIFAR10_URL,
                          help="a mirror of cifar-10-python.tar.gz (the MD5 is still checked)")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    dest = args.dir if args.dir is not None else cifar10.default_cifar10_dir()
    print(f"CIFAR-10 into {dest}")
    try:
        folder = cifar10.download_cifar10(dest, url=args.url, md5=cifar10.CIFAR10_MD5,
                                          progress=not args.quiet)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"CIFAR-10 is ready in {folder}")
    if dest.resolve() == cifar10.default_cifar10_dir().resolve():
        print("Load it with course_lib.load_dataset('cifar10').")
    else:
        print(f"Load it with course_lib.load_dataset('cifar10', path={str(dest)!r}), or set "
              f"{cifar10.DATA_DIR_VARIABLE}={dest} so that load_dataset('cifar10') finds it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
