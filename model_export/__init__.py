"""Export a trained Keras model to ONNX plus a self-describing artifact directory for serving."""
