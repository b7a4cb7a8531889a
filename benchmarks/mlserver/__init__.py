"""MLServer 1.7.1 as a load-test baseline, installed into its own virtual environment.

``venv`` builds the environment, ``settings`` writes MLServer's settings files, ``launch``
starts and stops the server; ``ort_runtime`` runs inside MLServer's environment only.
"""
