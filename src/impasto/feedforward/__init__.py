"""Painting with trained feed-forward networks (Johnson, Alahi & Fei-Fei 2016).

A network trained once per style paints any photo in one pass. :mod:`.network` is the
image-transformation network and its named architectures, :mod:`.model` the model files (safetensors
with the recipe, architecture and style in the metadata) and :class:`~.model.Model`, :mod:`.paint`
painting whole or in tiles with the colour options, :mod:`.export` the ONNX export.
"""

from .model import FORMAT, Model, ModelError, ModelInfo, load_model, read_extra, read_model_info, save_model
from .network import ARCHITECTURES, Architecture, TransformNet

__all__ = ["ARCHITECTURES", "FORMAT", "Architecture", "Model", "ModelError", "ModelInfo", "TransformNet",
           "load_model", "read_extra", "read_model_info", "save_model"]
