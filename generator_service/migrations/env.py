from generator_service.models import Base
from order_pipeline.commands.migrate import run_migrations_online

run_migrations_online(Base.metadata)
