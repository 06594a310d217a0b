package main

import "os/exec"

var execCommand = exec.Command
