"""The ``ipvs-py`` command.

A thin front end: each subcommand parses its arguments and calls into the
library; no table, scheduling or kernel logic lives here.  Subcommands are
registered in ``COMMANDS`` (name -> (help, add_arguments, run)), so a new
capability adds one entry rather than editing a growing if/elif chain.
"""
import argparse
import sys

from . import __version__


def _add_demo_args(parser):
    parser.add_argument(
        "--keys", type=int, default=1_000_000, metavar="N",
        help="keys hashed per function in the speed table (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=1,
        help="seed of the random table keys shown (default: %(default)s)")


def _run_demo(args):
    from .demo import run
    return run(n_keys=args.keys, seed=args.seed)


def _add_hash_args(parser):
    parser.add_argument("function", choices=sorted(_HASH_FUNCS),
                        help="kernel hash function to compute")
    parser.add_argument("words", nargs="*", default=[],
                        help="u32/u64 words (decimal or 0x hex); for "
                             "siphash/hsiphash/jhash: the data as hex bytes")
    parser.add_argument("--key", default="000102030405060708090a0b0c0d0e0f",
                        help="16-byte siphash key as 32 hex digits "
                             "(default: the kernel self-test key)")
    parser.add_argument("--initval", default="0",
                        help="jhash seed (default: 0)")
    parser.add_argument("--bits", type=int, default=32,
                        help="hash_32/hash_64 output bits (default: 32)")


_HASH_FUNCS = {
    "siphash": "bytes", "hsiphash": "bytes", "jhash": "bytes-seed",
    "siphash_1u64": "key", "siphash_2u64": "key", "siphash_3u64": "key",
    "siphash_4u64": "key", "siphash_1u32": "key", "siphash_2u32": "key",
    "siphash_3u32": "key", "siphash_4u32": "key",
    "hsiphash_1u32": "key", "hsiphash_2u32": "key", "hsiphash_3u32": "key",
    "hsiphash_4u32": "key",
    "jhash_1word": "seed", "jhash_2words": "seed", "jhash_3words": "seed",
    "jhash2": "list-seed", "hash_32": "bits", "hash_64": "bits",
}


def _run_hash(args):
    from . import hashing

    fn = getattr(hashing, args.function)
    kind = _HASH_FUNCS[args.function]
    try:
        key = bytes.fromhex(args.key)
        initval = int(args.initval, 0)
        if kind.startswith("bytes"):
            data = bytes.fromhex("".join(args.words))
            value = fn(data, initval) if kind == "bytes-seed" else fn(data, key)
        else:
            words = [int(w, 0) for w in args.words]
            if kind == "key":
                value = fn(*words, key)
            elif kind == "seed":
                value = fn(*words, initval)
            elif kind == "list-seed":
                value = fn(words, initval)
            else:
                value = fn(*words, args.bits)
    except (TypeError, ValueError) as exc:
        print(f"ipvs-py hash: {exc}", file=sys.stderr)
        return 2
    print(f"0x{value:x}")
    return 0


COMMANDS = {
    "demo": ("tour of what the model can do (grows with each capability)",
             _add_demo_args, _run_demo),
    "hash": ("compute one kernel hash (siphash, hsiphash, jhash, hash_32...)",
             _add_hash_args, _run_hash),
}


def build_parser():
    """The argparse parser of ``ipvs-py`` with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="ipvs-py",
        description="A faithful userspace model of Linux IPVS: its tables, "
                    "hashes and decisions, and a bridge to the real kernel.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None):
    """Entry point of the ``ipvs-py`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
