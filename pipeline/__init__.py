"""L2-regularization lab: DVC stages that prepare data, train Keras MLPs at a sweep of L2 rates,
evaluate them and record every run in MLflow."""
