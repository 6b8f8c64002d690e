from sigcli.cli.app import main

main()
