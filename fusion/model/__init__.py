"""The classifier: the network and its weights file, the training loop, the Kedro model dataset."""
