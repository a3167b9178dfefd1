"""``python -m melody_env.zoo ALGO``: print the path of the zoo hyperparameter file of ALGO."""

import sys

from melody_env.zoo import ALGORITHMS, conf_file

if len(sys.argv) != 2 or sys.argv[1] not in ALGORITHMS:
    sys.exit(f"usage: python -m melody_env.zoo {{{','.join(ALGORITHMS)}}}")
print(conf_file(sys.argv[1]))
