"""Serving code: the inference engine and the Lambda handlers. Never imports TensorFlow, Keras or pandas."""
