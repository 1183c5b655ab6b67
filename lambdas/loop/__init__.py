"""The retraining loop's decisions, in plain modules (boto3 and the standard library only) that the deployed
state machine's functions and the local runner (``python -m infra.retrain``, ``make retrain``) both call:

* :mod:`.settings`: the loop's typed settings (where the data live, the held-out share, the gate's margins);
* :mod:`.layout`: the data bucket's layout (base data versions, each run's files);
* :mod:`.base_data`: the base ratings and movies an operator uploads once, and forgetting users in them;
* :mod:`.table`: the stored events and the forgotten users, read from the events table;
* :mod:`.plan`: which events train the candidate and which are held out to judge it;
* :mod:`.gather`: a run's training data written to the bucket (or "nothing new");
* :mod:`.gate`: publish or stop, from the candidate's and the served model's figures;
* :mod:`.publish`: the candidate into the model store with the gate's record, and the switch.

The evaluation itself needs the engine and runs beside the training (``model_export.holdout``, in the job).
"""
