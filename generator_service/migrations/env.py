from generator_service.models import Base
from order_pipeline.migrations import run_migrations_online

run_migrations_online(Base.metadata)
