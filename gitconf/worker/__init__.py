"""The compile worker: compiles run in a process of their own, bounded in CPU time and memory.

A commit is data from whoever can push, and compiling it runs their regular expressions and
expands their aliases. So the serving process never compiles: it asks a long-lived worker
process (`child.py`), which keeps the incremental compile cache, runs in the idle scheduling
class, and answers with only what publishing needs (the JSON bodies the server does not have
yet, every config's ETag, and the keys that changed). A compile past `compile.timeout` CPU
seconds or `compile.max_memory` kills the worker; the commit is rejected with a problem that
says so, and the next request starts a fresh worker (`proxy.py`).
"""
