"""`rfcdrill mutate`: break the stack one requirement at a time and see whether the suite
notices (mutation testing of the cases). `registry` lists the mutants, `patching` is how one
is applied, `score` judges the runs, `command` runs them."""
