"""`python -m rai_lab.azure.standin --key K [options]` is `rai-lab standin --key K [options]`."""

import argparse
import sys

from rai_lab.azure.standin import add_arguments, run_from_args

parser = argparse.ArgumentParser(prog="python -m rai_lab.azure.standin",
                                 description="run the Azure OpenAI stand-in server on 127.0.0.1")
add_arguments(parser)
sys.exit(run_from_args(parser.parse_args()))
