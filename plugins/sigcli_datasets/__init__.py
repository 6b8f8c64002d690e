"""Built-in dataset loaders of sig, registered in group ``sigcli.datasets`` like any plugin."""
