// The supply watch: the programmable voltage detector at its highest level (PLS = 111; VDD below
// 2.78 V typical when falling, 2.88 V when rising, DS5319; about ±0.1 V from part to part). On a slow power-down the CPU runs on
// down to about 1.9 V, far below the W25Q16JV's 2.7 V minimum: the flash drivers refuse to start a
// program or erase while low() (the update client then reports a flash error and the server
// re-sends once the supply is back). Call watch() once at start-up; before that low() is false.
// The detector and PWR's clock then belong to the watch: an application that turns either off
// or sets another level (HAL code often does) makes low() true until watch() is called again,
// so that every update fails with a flash error rather than writing on an unwatched supply.
#pragma once

namespace stm32f1::supply {

void watch();
bool low();

}  // namespace stm32f1::supply
