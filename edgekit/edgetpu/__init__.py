"""What edgekit knows about the Edge TPU, in one place: data plus small pure functions.

Nothing here loads libedgetpu or TensorFlow (``python3 -m edgekit.edgetpu.stack`` runs on a bare
Raspberry Pi before anything is installed, so this file imports nothing). Each rule's evidence is
in docs/DESIGN.md.

=====================  ===========================================================================
``limits``             the compiler's status words and per-op limits (Coral's table, compiled pairs)
``ops``                per-op verdicts of compiler 16: data types, op types, op versions, rank
``mapping``            partitioning: which ops the compiler maps, segments, fix suggestions
``memory``             on-chip parameter memory: what is cached, what streams every inference
``compare``            what the compiler actually did (twin, log) beside the prediction
``compiler_report``    the compiler's stdout and log, parsed (:class:`CompileReport`)
``stack``              the libedgetpu/interpreter stack table (``edgekit stack``, setup-pi.sh)
``checks``             doctor's Edge TPU checks: the pair, device nodes and holders, the probe
=====================  ===========================================================================
"""
