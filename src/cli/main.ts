#!/usr/bin/env node
console.log('gatesock');
