"""A start-up check that the broker answers, with a one-line error if not."""

from kombu import Connection
from nameko.utils import sanitize_url

from order_pipeline.errors import StartupError
from order_pipeline.settings import amqp_uri as read_amqp_uri


def check_broker(config):
    amqp_uri = read_amqp_uri(config)
    connection = Connection(amqp_uri, connect_timeout=5)
    try:
        connection.ensure_connection(max_retries=1)
    except Exception as exc:  # any failure here means: fix the setting
        raise StartupError(
            f"cannot reach the broker at AMQP_URI={sanitize_url(amqp_uri)} ({exc}); check that RabbitMQ "
            "runs, or set AMQP_URI"
        ) from None
    finally:
        connection.release()
