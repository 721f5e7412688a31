"""The plumbing: objects, hashing, the object database, refs, the index and the worktree walk.

Nothing here imports the porcelain, the command line, the remote service, click, falcon,
boto3 or google-cloud-storage (docs/design.md §5).
"""
