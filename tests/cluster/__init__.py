"""The pipeline on a 3-node RabbitMQ cluster (quorum queues) and a 3-node
Galera cluster behind HAProxy, with nodes stopped, frozen and restarted."""
