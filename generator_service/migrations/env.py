from generator_service.models import Base
from order_pipeline.migrations import run_migrations_online

run_migrations_online(Base.metadata, version_table="alembic_version_generator")
