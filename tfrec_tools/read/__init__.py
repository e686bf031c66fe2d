"""The read side: finding shards, parsing and decoding records, the tf.data pipeline."""
