"""Adam as one fused kernel per variable.

Keras 3's Adam writes its update as about a dozen element-wise operations, each a pass over the variable, its two
moments and temporaries. Every step updates each embedding table whole (keras-team/keras#19992: the tables' L2 makes
their gradients dense anyway), so at ml-25m's 162,000 users those passes are a large part of an epoch.
:class:`FusedAdam` gives TensorFlow's ``ResourceApplyAdam`` kernel the same arithmetic
(``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, ``w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``)
to do in one pass. Same hyperparameters and state. On dense gradients, which every regularised table's are, the
results are Keras's up to float rounding; on a row-sparse gradient (a table without a penalty) it is textbook Adam,
where Keras's squares the pieces of a repeated row before adding them up (``tests/training/test_optim.py``).
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="recsys")
class FusedAdam(keras.optimizers.Adam):
    """:class:`keras.optimizers.Adam` whose update of each variable is TensorFlow's fused Adam kernel (falls back
    to Keras's own update for AMSGrad or another backend)."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype),
        )
