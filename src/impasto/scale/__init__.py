"""Painting at scale: many photos in one process, in worker processes or on a Ray cluster.

``executor``: where tasks run (this process, worker processes, Ray actors); the batch runner
and video segments hand their work to one of them.
"""
