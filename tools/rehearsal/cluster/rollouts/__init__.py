"""The Argo Rollouts controller, emulated: blue-green, canary, and analyses run for real."""
