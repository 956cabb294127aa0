"""Model.summary's table, in Keras' layout."""

__all__ = ["print_summary"]


def _shape_str(shape):
    if isinstance(shape, tuple):
        return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    return str(shape)


def _bytes(weights, trainable):
    n = sum(p.data.nbytes for p in weights if trainable is None or bool(p.trainable) == trainable)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def print_summary(name, input_tensor, rows, weights, trainable, line_length=None, positions=None,
                  print_fn=None):
    """Print the table: the input (functional models), then per (layer, output shape) row its
    name (type), output shape and weight count; then total, trainable and non-trainable."""
    print_fn = print_fn or print
    line_length = line_length or 65
    positions = positions or [0.45, 0.85, 1.0]
    cols = [int(line_length * p) for p in positions]

    def row(fields):
        line = ""
        for i, field in enumerate(fields):
            if i > 0:
                line = line[:-1] + " "
            line += (" " if i == 0 else "") + str(field)
            line = line[:cols[i]].ljust(cols[i])
        return line.rstrip()

    print_fn(f'Model: "{name}"')
    print_fn("_" * line_length)
    print_fn(row(["Layer (type)", "Output Shape", "Param #"]))
    print_fn("=" * line_length)
    if input_tensor is not None:  # functional: the input first, as Keras
        print_fn(row([f"{input_tensor.name} (InputLayer)", _shape_str(input_tensor.shape), "0"]))
        print_fn("")
    for i, (layer, shape) in enumerate(rows):
        params = sum(p.size for p in layer.weights) if layer.built else 0
        print_fn(row([f"{layer.name} ({type(layer).__name__})", _shape_str(shape), f"{params:,}"]))
        if i < len(rows) - 1:
            print_fn("")
    print_fn("=" * line_length)
    n_trainable = sum(p.size for p in weights if p.trainable and trainable)
    total = sum(p.size for p in weights)
    print_fn(f"Total params: {total:,} ({_bytes(weights, None)})")
    print_fn(f"Trainable params: {n_trainable:,} ({_bytes(weights, True)})")
    print_fn(f"Non-trainable params: {total - n_trainable:,} ({_bytes(weights, False)})")
    print_fn("_" * line_length)
