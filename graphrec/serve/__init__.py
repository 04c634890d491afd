"""Online recommendations: ``graphrec serve RUN_DIR`` (:mod:`graphrec.serve.app`) over a
run folder's model held in memory (:mod:`graphrec.serve.model`)."""
