"""The one registry of nn.Modules; each model module registers itself on import."""

from vidseg_cli.core.registry import Registry

MODELS = Registry("models")
