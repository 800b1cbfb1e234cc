from copytrace.cli import main

main()
