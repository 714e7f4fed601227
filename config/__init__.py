"""The typed stack configuration, one module per layer, below the components that use it.

    fields.py   every reusable field type (addresses, names, paths, URLs, ...), strict
    base.py     the base model, secrets, shared small models (charts, manifests, images)
    cluster.py storage.py knative.py gateway.py csghub.py dataflow.py octopus.py openhydra.py
    stack.py    the root model and the rules that span sections
    files.py    the provisioner's files: found, checked, read (one model for plan and up)
    load.py     the two sources (engine, stack file) and the one validation

Layers read one way: config → components → stacks (wiring, plan, rules).
"""
