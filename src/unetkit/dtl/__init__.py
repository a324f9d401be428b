"""DTL: the Data Transformation Language of legacy Supervisely (graph parse/validate/run, layers)."""
