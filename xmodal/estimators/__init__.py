"""One estimator per task over a shared base: V2SClassifier (series), SequenceClassifier, TableClassifier."""
