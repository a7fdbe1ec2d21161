"""torch nn.Modules and checkpoint loading (DESIGN.md "models/").

Importing this package registers every model in `MODELS` by name: "c3d", "3dfcn-32s",
"3dfcn-8s", "i3d", "r2plus1d-18", "sep3d", "resnet18", "resnet50", "vgg16", "fsn", "wfsn",
"scnn", "segment_tube".
Build one with `MODELS.build(name, **config)`, or from a checkpoint with
`build_from_checkpoint(path)`. See docs/models.md.
"""

from vidseg_cli.core.registry import Registry, RegistryError
from vidseg_cli.models import (  # noqa: F401  (register)
    backbones2d,
    c3d,
    fcn3d,
    fsn,
    i3d,
    r2plus1d,
    scnn,
    segment_tube,
    sep3d,
)
from vidseg_cli.models.checkpoint.format import (
    build_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from vidseg_cli.models.checkpoint.layouts import LAYOUTS, load_public_weights
from vidseg_cli.models.checkpoint.weights import load_state_dict_checked
from vidseg_cli.models.common import ModelInputError
from vidseg_cli.models.registry import MODELS

__all__ = [
    "LAYOUTS",
    "MODELS",
    "ModelInputError",
    "Registry",
    "RegistryError",
    "build_from_checkpoint",
    "load_public_weights",
    "load_state_dict_checked",
    "read_checkpoint",
    "save_checkpoint",
]
