"""``python -m rrsis_train ARGS`` = ``rrsis train ARGS`` (the form torchrun launches:
``torchrun --nproc_per_node 2 -m rrsis_train --config rsam-lite ...``)."""

import sys

from rrsis_engine.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
