from order_pipeline.commands.migrate import run_migrations_online
from processor_service.models import Base

run_migrations_online(Base.metadata)
