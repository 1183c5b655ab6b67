"""Infrastructure: the local stack (moto, in-process) and the AWS deployment."""
