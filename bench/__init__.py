"""The pipeline's benchmark: `make bench` (full size) or `make bench-smoke`.

Every scenario runs the real services (`nameko run` processes) against the
local RabbitMQ and MariaDB, in a database and vhost of its own that is
dropped afterwards, and measures only what a user can see: rows in the
tables, messages in queues, HTTP answers, and the processes' memory.

    python -m bench [--orders N] [--latency-seconds S] [--metrics-rows N]
                    [--repeat R] [--smoke] [--profile [processor|generator]]
"""
