"""Training theta and omega: configuration, validation carving, gradients, the loop, the probe start, the search."""
