"""rrsis_train: the RSAM training loop, click simulation, data mixing, distributed training, promotion.

Entry points: ``rrsis train`` (:mod:`rrsis_train.cli`), :func:`rrsis_train.trainer.train`,
``rrsis bench train`` (:mod:`rrsis_train.bench`).
"""
