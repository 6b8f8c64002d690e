"""Meta-learning for fast adaptation to new writers (``sig meta``; Hafemann et al., TIFS 2019).

- :mod:`~sigcli.meta.models`: the meta-learners (SmallCNN, SigNet; one logit), functional;
- :mod:`~sigcli.meta.tasks`: a writer's task (support and query sets), drawn from a seeded generator;
- :mod:`~sigcli.meta.maml`: the inner loop, a task's meta-loss, a meta-batch (vmap or a loop);
- :mod:`~sigcli.meta.learner`: a meta-learner and its checkpoint file;
- :mod:`~sigcli.meta.train`: meta-training on the loop of ``sig train``, and the command's run;
- :mod:`~sigcli.meta.evaluate`: adapting to writers and the test protocol (WD results).
"""
