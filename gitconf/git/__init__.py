"""Git access with pygit2: read a commit's tree, or a folder on disk, into a FileSet."""
