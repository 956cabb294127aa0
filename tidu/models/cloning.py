"""clone_model: the same architecture with new layer objects (optionally the same weights,
optionally in another dtype, e.g. float64 for gradient checks)."""
from tidu.layers.input_layer import Input
from tidu.models.model import Model

__all__ = ["clone_model"]


def _clone_layer(layer, dtype):
    if isinstance(layer, Model):
        return clone_model(layer, dtype=dtype)
    config = layer.get_config()
    if dtype is not None:
        config["dtype"] = dtype
    return type(layer).from_config(config)


def clone_model(model, copy_weights=False, dtype=None):
    """A new model with the architecture of `model` (fresh layers from their configs, same
    names). copy_weights: also copy the weights (cast to the clone's dtype). dtype: build the
    clone's weights in this dtype ('float64'), whatever the original's."""
    from tidu.models.sequential import Sequential

    if isinstance(model, Sequential):
        clone = Sequential([_clone_layer(l, dtype) for l in model.layers], name=model.name)
        if model.built and not clone.built and model.input_shape is not None:
            clone.build(model.input_shape)
    elif isinstance(model, Model) and model._output_tensor is not None:
        clones = {id(l): _clone_layer(l, dtype) for l in model.layers}
        t_in = model._input_tensor
        inp = Input(t_in.shape[1:], dtype=dtype or t_in.dtype, name=t_in.name)
        values = {id(t_in): inp}
        for node in model._nodes:
            args = [values[id(t)] for t in node.inputs]
            values[id(node)] = clones[id(node.layer)](node.layer.call_arguments(args),
                                                      **node.call_kwargs)
        clone = Model(inp, values[id(model._nodes[-1])], name=model.name)
    else:
        raise TypeError(f"clone_model: expected a Sequential or functional Model, got {type(model).__name__}")
    if copy_weights:
        if not model.built:
            raise ValueError("clone_model: copy_weights needs the original model built")
        clone.set_weights(model.get_weights())
    return clone
