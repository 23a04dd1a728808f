"""The run kernel: records, stages and the graph, ingest, the journal, the run itself.

It knows stages only through the registry (``stages.REGISTRY``) and pixels not at all.
"""
