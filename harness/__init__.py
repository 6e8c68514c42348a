"""What the tests and the benchmark share to run the pipeline for real:
throwaway databases and vhosts (`sandbox`), the services as `nameko run`
processes (`processes`), what the tables say (`tables`) and what the broker
holds or is sent (`broker`). Nothing here is imported by the services."""
