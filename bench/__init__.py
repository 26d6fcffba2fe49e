"""chatserver's benchmark suite: ``python -m bench`` (see ``bench/README.md``).

Modules, one concept each:

``wsclient``     lean WebSocket client on websockets' sans-I/O protocol
``links``        frame dicts over msgpack or Socket.IO framing
``chat``         visitors and agents: open-loop senders, latency, recovery copy
``worker``       one load-generator process
``generator``    the pool of worker processes, seen from the coordinator
``servers``      the servers under test as pinned subprocesses
``seed``         seeding chatserver's SQLite file, agent logins
``pairing``      the baselines' in-memory visitor-to-agent pairing
``baseline_ws``  baseline: bare websockets relay
``baseline_sio`` baseline: python-socketio on uvicorn
``scenarios``    idle, pairs, fan-out, throughput, storm, slow consumer
``plans``        sizes and rates of --smoke, --quick and the full run
``stats``        percentiles, windows, generator-saturation and noise checks
``report``       Markdown tables and the issue's target checks
``profile``      py-spy profile of chatserver under load
"""
