"""ai-platform: bare machines over SSH → K3s → Knative, gateway, CSGHub, Dataflow, Octopus, open-hydra.

Thin on purpose: load and validate the stack config once (nothing is registered when it
is invalid), build the platform, export its outputs.
"""

import os
from pathlib import Path

import pulumi

from config.load import ConfigError, from_pulumi
from stacks.platform import build, export

# The engine runs the program from the project directory: relative paths in the stack
# config (airgap bundle, key files) are relative to it.
project_dir = Path(os.getcwd())
try:
    loaded = from_pulumi(project_dir)
    # build() checks every chart's values against its schema before registering anything
    platform = build(loaded.config, pulumi.get_stack(), project_dir, loaded.secret_keys)
except ConfigError as err:
    # RunError: reported without a Python traceback, every problem with its key path.
    raise pulumi.RunError(err.render()) from None

export(platform)
